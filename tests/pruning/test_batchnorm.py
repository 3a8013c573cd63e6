import torch
from torch import nn

from edgeprune.pruning.batchnorm import recalibrate_batchnorm


def test_running_statistics_become_the_data_average_and_weights_stay():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).eval()
    model[1].running_mean.fill_(5.0)
    weights = [p.detach().clone() for p in model.parameters()]
    batches = [torch.randn(2, 3, 4, 4) + i for i in range(3)]
    assert recalibrate_batchnorm(model, batches) == 3
    with torch.no_grad():
        conv_out = torch.cat([model[0](b) for b in batches])
    torch.testing.assert_close(model[1].running_mean, conv_out.mean((0, 2, 3)), rtol=1e-5, atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), weights))
