"""Layers with hand-written backward passes, on top of the kernel layer (``import layers as L``)."""

from .activations import ReLU, Sigmoid, Tanh
from .base import Layer, Parameter, check_finite
from .batchnorm import BatchNorm2D
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .gru import GRU
from .layernorm import LayerNorm
from .losses import Loss, MSELoss, SoftmaxCrossEntropy
from .lstm import LSTM
from .pool import MaxPool2D
from .rnn import RNN
from .shape import Flatten, FlattenTime, LastTimeStep

__all__ = ["Layer", "Parameter", "check_finite", "Dense", "Conv2D", "MaxPool2D", "ReLU", "Tanh", "Sigmoid", "Flatten",
           "FlattenTime", "LastTimeStep", "Dropout", "BatchNorm2D", "Embedding", "RNN", "LSTM", "GRU", "Loss",
           "SoftmaxCrossEntropy", "MSELoss", "LayerNorm"]
